# Loaded by Python at start-up because this folder is first on PYTHONPATH. Fed-BioMed's researcher imports
# torch.utils.tensorboard.SummaryWriter at module level; tensorboard is not in Debian, so that module is replaced by
# one whose SummaryWriter refuses to be built (only Experiment(tensorboard=True) would build one).
import sys
import types

_tensorboard = types.ModuleType("torch.utils.tensorboard")


class SummaryWriter:
    def __init__(self, *args, **kwargs):
        raise RuntimeError("interop-v45 stub: tensorboard is not installed; use Experiment(tensorboard=False)")


_tensorboard.SummaryWriter = SummaryWriter
sys.modules["torch.utils.tensorboard"] = _tensorboard
