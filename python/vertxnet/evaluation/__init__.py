"""Measuring what the pipeline finds: metrics against truth (SPEC §9) and the latency benchmark.

Never imported by the inference path.
"""
