"""Pure rules of fleetpipe: statuses, transitions, roll-ups, schemas. No I/O."""
