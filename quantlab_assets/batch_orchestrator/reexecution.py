"""Importable job handles, so a failed run can be re-executed from its failure in a new process."""

from quantlab_assets.definitions import defs


def implicit_asset_job():
    return defs.resolve_implicit_global_asset_job_def()


def daily_chain_job():
    return defs.resolve_job_def("daily_chain")


def labels_refresh_job():
    return defs.resolve_job_def("labels_refresh")


JOBS = {"daily_chain": daily_chain_job, "labels_refresh": labels_refresh_job}
