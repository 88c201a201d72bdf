"""Analysis: petrophysics of segmented volumes, and the figures the course draws.

    from rockseg.analysis import analyze, porosity, permeability, plot_orthoslices
"""
from rockseg.analysis.attention import attention_by_class, run_attention_maps
from rockseg.analysis.figures import (
    COLOURBLIND,
    class_palette,
    colourize,
    legend_handles,
    plot_class_by_grey,
    plot_class_fractions,
    plot_class_histograms,
    plot_confusion,
    plot_denoise_comparison,
    plot_error_bars,
    plot_gallery,
    plot_fraction_profile,
    plot_grey_bin_labels,
    plot_histogram_comparison,
    plot_iou_heatmap,
    plot_history,
    plot_neighbour_similarity,
    plot_orthoslices,
    plot_per_class_iou,
    plot_prediction,
    plot_registration,
    plot_slices_with_masks,
    plot_twin_comparison,
    plot_weak_labels,
    plot_attention_maps,
    plot_pore_size_distributions,
)
from rockseg.analysis.flow import DARCY_M2, permeability, pore_network
from rockseg.analysis.petrophysics import (
    analyze,
    connected_porosity,
    cube_in_cylinder,
    export_labels_tiff,
    fraction_error,
    fraction_profile,
    fractions_with_uncertainty,
    overlay_rgb,
    phase_fractions,
    physics_comparison,
    physics_errors,
    pore_size_distribution,
    porosity,
    rev_curve,
    specific_surface_area,
    sphere_pack,
)

__all__ = [
    "COLOURBLIND", "DARCY_M2", "analyze", "class_palette", "colourize", "connected_porosity", "export_labels_tiff", "fraction_error",
    "fraction_profile", "fractions_with_uncertainty", "legend_handles", "overlay_rgb", "permeability",
    "phase_fractions", "physics_comparison", "physics_errors", "plot_class_by_grey", "plot_class_fractions", "plot_class_histograms", "plot_confusion", "plot_denoise_comparison", "plot_error_bars",
    "plot_gallery", "plot_iou_heatmap",
    "plot_fraction_profile", "plot_grey_bin_labels", "plot_histogram_comparison", "plot_history", "plot_neighbour_similarity", "plot_orthoslices", "plot_per_class_iou", "plot_prediction",
    "plot_registration", "plot_slices_with_masks", "plot_twin_comparison", "plot_weak_labels", "pore_network",
    "pore_size_distribution", "porosity", "rev_curve", "specific_surface_area", "sphere_pack",
    "attention_by_class", "cube_in_cylinder", "plot_attention_maps", "plot_pore_size_distributions", "run_attention_maps",
]
