"""`deid batch`: de-identify an archive of video files and image folders on Ray, one task per file.

    from deid_sdk.batch import run_batch
    summary = run_batch("footage/", "footage_deid/", workers=2)   # a local Ray unless address= is given

Ray is optional (`pip install deid_sdk[ray]`): only run_batch imports it.
"""
from deid_sdk.batch.jobs import Job, plan_jobs
from deid_sdk.batch.media_length import MediaLength, media_length
from deid_sdk.batch.run import BatchSummary, run_batch

__all__ = ["BatchSummary", "Job", "MediaLength", "media_length", "plan_jobs", "run_batch"]
