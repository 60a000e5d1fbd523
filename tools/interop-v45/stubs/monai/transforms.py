class _Unavailable:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError(f"interop-v45 stub: MONAI is not installed ({type(self).__name__})")


class Compose(_Unavailable):
    pass


class LoadImage(_Unavailable):
    pass


class ToTensor(_Unavailable):
    pass
