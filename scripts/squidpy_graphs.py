"""squidpy's spatial graphs, through the API of the installed squidpy.

squidpy 1.8 split `squidpy.gr.spatial_neighbors` into one function per graph (`spatial_neighbors_knn`,
`spatial_neighbors_delaunay`, ...) and deprecated it, for removal in 1.9; both give the same graphs (checked
at 1M random points: identical connectivities and distances, same time). The peer scripts
(`compare_squidpy.py`, `bench/peers.py`) call these two functions, so they run on squidpy before and after.
"""

import squidpy as sq


def knn(adata, k):
    """The k-nearest-neighbour graph of `adata.obsm["spatial"]` (generic coordinates), in `adata.obsp`."""
    if hasattr(sq.gr, "spatial_neighbors_knn"):
        return sq.gr.spatial_neighbors_knn(adata, n_neighs=k)
    return sq.gr.spatial_neighbors(adata, coord_type="generic", n_neighs=k)


def delaunay(adata):
    """The Delaunay graph of `adata.obsm["spatial"]` (generic coordinates, unpruned), in `adata.obsp`."""
    if hasattr(sq.gr, "spatial_neighbors_delaunay"):
        return sq.gr.spatial_neighbors_delaunay(adata)
    return sq.gr.spatial_neighbors(adata, coord_type="generic", delaunay=True)
