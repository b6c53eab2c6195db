"""LeNet-5's part of the torch app `lenet5_torch.py` and its launcher `distributor.py`: its
flags, data and model (`workload.LeNet5`), on the shared machinery in ../../torch_app/."""
