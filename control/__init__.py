"""Run control: the one door to the runs, for the API and (later) the CLI.

It owns starting runs (the row, then its workflow), every operator action (pipeline run: cancel,
pause, resume or pass a gate; stage run: promote, cancel; target run: add a device, cancel, send
again; command: cancel), which workflow owns which status, the updates that carry an action
there, the pre-checks (from the rule table in domain.actions, which the workflows' validators
read too), waiting for the result within the answer's deadline, and the relay that passes
device command events from the store to their target-run workflows (resending owed signals on
a timer), and the reconciler that ends the runs whose workflow closed without ending them
(closing.py does the ending, for it and for a cancel of a run whose workflow is gone).
It answers with plain outcomes and errors of its own (control.errors), never with HTTP.
"""
