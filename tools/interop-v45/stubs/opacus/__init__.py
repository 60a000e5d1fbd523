"""Stand-in for opacus. Fed-BioMed's DPController builds a PrivacyEngine even without differential privacy, so
construction works; using it raises."""


class PrivacyEngine:
    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        raise NotImplementedError(f"interop-v45 stub: opacus is not installed (PrivacyEngine.{name})")
