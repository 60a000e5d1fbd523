class ModuleValidator:
    """Only reached with differential privacy on."""

    def __init__(self, *args, **kwargs):
        raise NotImplementedError("interop-v45 stub: opacus is not installed (ModuleValidator)")

    @staticmethod
    def is_valid(*args, **kwargs):
        raise NotImplementedError("interop-v45 stub: opacus is not installed (ModuleValidator.is_valid)")

    @staticmethod
    def fix(*args, **kwargs):
        raise NotImplementedError("interop-v45 stub: opacus is not installed (ModuleValidator.fix)")
