"""What the BigDL apps share: segments, checkpoint, momentum, training loop, live cores, reuse.

An app (applications/lenet5/lenet5.py, applications/news20/text*.py) puts this directory's
parent on sys.path, describes itself as a `workload.Workload`, and calls `segment.main`.
"""
