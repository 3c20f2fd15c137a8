"""The sample repository: Debian 13 (trixie) packages repacked as a small, signed, Rocky-shaped
RPM repository with EL10's packaging traits (mirror trees, a DVD ISO, a signed CHECKSUM, a profile), so tests walk the same chain
of trust as a real build without Rocky's mirrors. See DESIGN.md, "Testing without the internet".

    python -m tests.sample_repo OUTDIR          # by hand
    build_sample_repo(Path(OUTDIR))             # from a session fixture; cached by its inputs
"""

from .build import SampleRepo, build_sample_repo

__all__ = ["SampleRepo", "build_sample_repo"]
