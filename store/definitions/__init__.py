"""What operators define: tenants and keys, devices and groups, pipelines with their stages,
target lists and operation lists. Each module holds its entity's family, reads and writes."""
