"""What every PyTorch app for PipeTune shares (as ../bigdl_app/ for BigDL): the segments of a
process (segment.py: checkpoint, ranks, SGD, the training loop with its pauses and windows,
live threads, process reuse) and the TorchDistributor launcher (distributor.py). An app
supplies a `Workload` (workload.py): its own flags, its data as each rank's `Shard`, its
model. lenet5_torch and news20's textcnn_torch, textlstm_torch are built on it."""
