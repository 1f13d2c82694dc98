"""Doorward's benchmarks (`make bench` = `python -m bench`). Not part of the installed product:
they run from a checkout, with the `bench` extra (the prototype's face_recognition baseline).

    __main__.py   the runner and its explicit list of sections
    common.py     context, doc writer, clean environment, page-cache drop
    face.py       face check against the prototype and one encoder pass; memory of the door
    prototype.py  the prototype's pipeline (face_recognition), the baseline only
    alerts.py     alert throughput and latency through the outbox
    sd_card.py    bytes written per 1,000 events, batched against the baseline
    admin_upload.py  the admin process's peak RSS on the largest accepted upload (5 files)
    store.py      sync against MariaDB (stand-alone: python -m bench.store)
"""
