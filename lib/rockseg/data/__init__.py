"""Data: reading and writing, the dataset registry, the synthetic twins, splits, patches and
the one image scaling.

    from rockseg.data import load_dataset, load_folder, slab_split, read_volume
"""
from rockseg.data.datasets import Dataset, default_dataset_name, load_dataset, load_folder, resolve_dataset
from rockseg.data.folders import check_pair, find_pairs, find_splits, pair_folders, write_folder, write_keras_segmentation
from rockseg.data.footprint import sample_footprint
from rockseg.data.io import (
    atomic_path,
    list_images,
    list_slices,
    natural_key,
    read_image,
    read_json,
    read_volume,
    write_json,
    write_tiff,
)
from rockseg.data.masks import decode_mask, read_mask
from rockseg.data.normalize import Scaling, as_scaling, check_pairs, fit_scaling, prepare_arrays, to_uint8
from rockseg.data.patches import PatchGrid, patch_positions, patchify, random_crops, unpatchify
from rockseg.data.registry import fetch, get_spec, list_datasets
from rockseg.data.split_data import SplitData, load_split_data
from rockseg.data.splits import (check_leakage, group_split, min_distance, neighbour_similarity, random_split,
                                 random_split_like, slab_split)
from rockseg.data.synth import synthetic_sandstone, synthetic_sem_qemscan, synthetic_thin_section
from rockseg.data.volumes import create_output, open_volume

__all__ = [
    "Dataset", "PatchGrid", "Scaling", "SplitData", "as_scaling", "atomic_path", "check_leakage", "check_pair",
    "check_pairs", "create_output", "decode_mask", "default_dataset_name", "resolve_dataset", "fetch", "find_pairs", "find_splits",
    "fit_scaling", "get_spec", "group_split", "list_datasets", "list_images", "list_slices", "load_dataset",
    "load_folder", "load_split_data", "min_distance", "natural_key", "neighbour_similarity", "open_volume",
    "pair_folders", "patch_positions", "patchify", "prepare_arrays", "random_crops", "random_split", "random_split_like",
    "read_image", "read_json", "read_mask", "read_volume", "sample_footprint", "slab_split",
    "synthetic_sandstone", "synthetic_sem_qemscan", "synthetic_thin_section", "to_uint8", "unpatchify",
    "write_folder", "write_json", "write_tiff", "write_keras_segmentation",
]
