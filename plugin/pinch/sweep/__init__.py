"""The evidence sweep's report: every method at every target sparsity, from one results table.

The recipes run the sweep (``--pruning "sspg sspg_structured ump ..." --sweep "0.5 ..."``)
and append a row per run; ``python -m pinch.sweep`` (``pinch sweep-report``) turns the table
into REPORT.md with its figures: WER against sparsity, the largest lossless sparsity per
method, the per-layer allocation sspg chose, its schedule over training and each method's cost.
"""
