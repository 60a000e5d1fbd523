class DPDataLoader:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("interop-v45 stub: opacus is not installed (DPDataLoader)")
