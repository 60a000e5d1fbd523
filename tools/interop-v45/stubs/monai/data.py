class ITKReader:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("interop-v45 stub: MONAI is not installed (ITKReader)")
