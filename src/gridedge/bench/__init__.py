"""Benchmark harnesses behind ``gridedge bench …``: each prints a table, writes JSON and sets our
figures beside the seed's."""
