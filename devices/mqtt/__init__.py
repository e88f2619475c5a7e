"""The MQTT gateway: fleetpipe plays the AWS IoT Jobs service's side of the Jobs device
protocol over any MQTT broker, so devices running an AWS IoT Jobs agent work unchanged."""
