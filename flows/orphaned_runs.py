"""Flow runs a stopped `sendout up` left holding their deployment's only slot, ended.

A deployment with `concurrency_limit: 1` (prefect.yaml) gives its slot to a run from the moment
the worker moves it to Pending. A worker stopped in between (Ctrl-C while it submits a run, or
an `up` that failed to start) leaves the run Pending for good, and every later run of the
deployment waits for the slot: due send-outs were never sent again. `sendout up` runs this
before it starts its worker, when no run of this Prefect server can be alive, and ends every
Pending or Running run as Crashed and every Cancelling one as Cancelled (the states Prefect
lets each go to), which gives the slot back.

Run as `python -m flows.orphaned_runs` with PREFECT_API_URL set; prints how many it ended.
"""

from prefect import get_client
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelled, Crashed

UNFINISHED = [StateType.PENDING, StateType.RUNNING, StateType.CANCELLING]


def end_orphaned_runs() -> int:
    """End every flow run left unfinished by workers that are gone; how many were ended."""
    unfinished = FlowRunFilter(
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=UNFINISHED))
    )
    why = "its worker stopped with `sendout up`; ended when it started again"
    ended = 0
    with get_client(sync_client=True) as client:
        for run in client.read_flow_runs(flow_run_filter=unfinished):
            cancelling = run.state is not None and run.state.type == StateType.CANCELLING
            final = Cancelled(message=why) if cancelling else Crashed(message=why)
            result = client.set_flow_run_state(run.id, final)
            ended += result.state is not None and result.state.type == final.type
    return ended


if __name__ == "__main__":
    print(f"{end_orphaned_runs()} unfinished flow runs of a stopped worker ended")
