"""LeNet-5 on PyTorch for PipeTune: the parts of `lenet5_torch.py` (the app) and
`distributor.py` (its TorchDistributor launcher). README.md next to them says how they fit."""
