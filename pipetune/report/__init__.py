"""`pipetune report`: what a run did, as one self-contained HTML page and PNG figures.

`run_dir` reads a run directory (summary.json and the journal, as typed events with their
times); `timeline`, `tradeoff` and `tables` turn it into what is drawn and shown, without
matplotlib; the `draw_*` modules draw (matplotlib is imported there, lazily, through
`plotting`); `single` and `compare` write one run's report and several runs side by side;
`bench_plots` draws the benchmark and replay tables.
"""
