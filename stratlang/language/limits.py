"""The limits a spec and its data must keep, checked before any work starts: each is a
positioned error that names the limit, never a hang or an exhausted memory."""

MAX_SPEC_CHARACTERS = 1_000_000  # a whole spec
MAX_LINE_CHARACTERS = 10_000  # one line (a long list may go on over several lines)
MAX_DEPTH = 32  # brackets inside brackets
MAX_NUMBER = 1e15  # the magnitude of a number written in a spec
MAX_NODES = 1_000_000  # nodes of one graph factor
MAX_EDGES = 10_000_000  # edges of one graph factor (24 bytes each in its edge list)
MAX_STRATA = 1_000_000_000  # K, the product of the factors' nodes
MAX_BASIS = 100_000  # eigenvectors of a `basis` (the fit has M × parameters variables)
EDGE_BYTES = 24  # an edge's two node numbers and its weight
MAX_SPEC_BYTES = 4 * MAX_SPEC_CHARACTERS  # a spec file (UTF-8: at most 4 bytes a character)
MAX_FILE_BYTES = 2**30  # a data, graph or distance file, checked before it is read


def factor_too_large(graph: str, sizes: list[int], edges: int | None) -> str | None:
    """What makes a graph factor too large to build, or None."""
    nodes = 1
    for n in sizes:
        nodes *= n
    if nodes > MAX_NODES:
        return (f"graph '{graph}' would have {nodes:,} nodes; a factor has at most "
                f"{MAX_NODES:,}")
    if edges is not None and edges > MAX_EDGES:
        return (f"graph '{graph}' on {nodes:,} nodes would have {edges:,} edges (its edge list "
                f"alone about {gigabytes(edges, EDGE_BYTES)}); a factor has at most "
                f"{MAX_EDGES:,} edges")
    return None


def basis_problem(count: int, k: int) -> str | None:
    """Why a ``basis`` of ``count`` eigenvectors does not fit K = ``k`` strata, or None."""
    if count <= k:
        return None
    return f"basis {count} exceeds the K = {k:,} strata: at most {k:,} eigenvectors"


def gigabytes(count: int, per: int) -> str:
    """``count`` things of ``per`` bytes, in words."""
    size = count * per
    return f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB"


def bytes_words(size: int) -> str:
    """A size in bytes, in words ('1.0 GiB', '3 MiB', '120 bytes')."""
    if size >= 2**30:
        return f"{size / 2**30:.1f} GiB"
    return f"{size / 2**20:.0f} MiB" if size >= 2**20 else f"{size:,} bytes"


def file_too_large(name: str, size: int | None, limit: int) -> str:
    """'data file 'x' is 4.0 GiB; …' for a file of ``size`` (None: unknown, past the limit)
    bytes over the ``limit``."""
    has = f"is {bytes_words(size)}" if size is not None else f"has more than {bytes_words(limit)}"
    if limit == MAX_SPEC_BYTES:
        return f"{name} {has}; a spec has at most {MAX_SPEC_CHARACTERS:,} characters"
    return f"{name} {has}; stratlang reads files of at most {bytes_words(limit)}"
