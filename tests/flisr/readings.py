"""What the head meter and the sag meters of turin-2feeder's feeder A read in a twin state,
without instrument errors: the inputs most location tests start from."""

from __future__ import annotations

import numpy as np

from gridedge.flisr.location import HeadPhasors, SagReport


def exact_readings(pre, during, meters) -> tuple[HeadPhasors, list[SagReport]]:
    head = HeadPhasors(
        pre.node_voltage("BB-A"),
        pre.branch_current("CB-A"),
        during.node_voltage("BB-A"),
        during.branch_current("CB-A"),
    )
    sags = [
        SagReport(m.id, np.abs(pre.node_voltage(m.node_id)), np.abs(during.node_voltage(m.node_id)))
        for m in meters
    ]
    return head, sags
