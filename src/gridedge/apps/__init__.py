"""Built-in apps. The node runtime starts one by its catalog name: module
``gridedge.apps.<name>`` (dashes become underscores), entry point ``factory()``.

| name | module | what it does |
|---|---|---|
| ``telemetry`` | :mod:`gridedge.apps.telemetry` | periodic RMS/power/energy reading |
| ``outage`` | :mod:`gridedge.apps.outage` | last gasp, phase loss, restore with duration |
| ``fault-capture`` | :mod:`gridedge.apps.fault_capture` | pre/during phasors, sag log, COMTRADE |
| ``relay`` | :mod:`gridedge.apps.relay` | executes commands, answers with the actual state |

``params`` and ``_loop`` are helpers shared by these apps, not apps. See docs/meter.md.
"""
