"""The operator's commands (`apply`, `runs`, `targets`, `devices`): they speak only the REST API,
so they work from any machine that can reach it, never touching the store or Temporal."""
