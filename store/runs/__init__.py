"""What runs: run rows and their status changes, stage and target runs, retries, commands
with their events and the signals owed to workflows, and the API's reads of all of them."""
