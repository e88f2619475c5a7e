"""The fault drill's core, shared by `bench/drill.py` (full size, figures) and the test suite's
small drill (tests/reliability/test_drill.py): the real processes and how to hurt them
(stack), the fleet it runs on (fleet), the run under faults (drill) and the checks (checks)."""
