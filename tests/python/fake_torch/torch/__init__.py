# A stand-in for PyTorch in ringmaster's hook tests: only the names the hook
# touches, laid out as torch lays them out (torch.distributed re-exports
# distributed_c10d; torch.cuda's submodules bind _lazy_init by name).
# Importing it, like importing torch, imports torch.cuda and torch.distributed.
from . import cuda
from . import distributed
