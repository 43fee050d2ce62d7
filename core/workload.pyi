import numpy as np
import numpy.typing as npt

from agner.core.router import Router

def run(
    r: Router,
    arrival_queue: npt.NDArray[np.int32],
    dt_us: int,
    handle_us: int,
    patience_us: int,
    break_us: int,
    rona_per_mille: int,
    seed: int,
    arrival_chain: npt.NDArray[np.int32] | None = None,
) -> tuple[int, int, int]: ...
