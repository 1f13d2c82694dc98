"""The door service: one door's parts composed and run.

- loop.py      Door: builds the parts (relay locked first), the loop thread, ordered stop
- commands.py  CommandRunner: each state-machine command carried out (relay first)
- recorder.py  Recorder: events and alerts to the replica, batching, held records, direct alerts
- faces.py     FaceJobs: camera + face engine off the loop thread
- budget.py    BudgetFile: the brute-force budget across restarts
- policy.py    policy_from(config): the state machine's Policy
"""

from appliance.door.loop import Door
from appliance.door.policy import policy_from
from appliance.door.recorder import RecordedEvent

__all__ = ["Door", "RecordedEvent", "policy_from"]
