"""Analysis: petrophysics of segmented volumes, and the figures the course draws.

    from rockseg.analysis import analyze, porosity, permeability, plot_orthoslices
"""
from rockseg.analysis.figures import (
    COLOURBLIND,
    class_palette,
    colourize,
    legend_handles,
    plot_class_by_grey,
    plot_class_fractions,
    plot_class_histograms,
    plot_denoise_comparison,
    plot_fraction_profile,
    plot_grey_bin_labels,
    plot_histogram_comparison,
    plot_history,
    plot_neighbour_similarity,
    plot_orthoslices,
    plot_per_class_iou,
    plot_prediction,
    plot_registration,
    plot_slices_with_masks,
    plot_twin_comparison,
)
from rockseg.analysis.flow import DARCY_M2, permeability, pore_network
from rockseg.analysis.petrophysics import (
    analyze,
    connected_porosity,
    export_labels_tiff,
    fraction_error,
    fraction_profile,
    fractions_with_uncertainty,
    overlay_rgb,
    phase_fractions,
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
    "phase_fractions", "physics_errors", "plot_class_by_grey", "plot_class_fractions", "plot_class_histograms", "plot_denoise_comparison",
    "plot_fraction_profile", "plot_grey_bin_labels", "plot_histogram_comparison", "plot_history", "plot_neighbour_similarity", "plot_orthoslices", "plot_per_class_iou", "plot_prediction",
    "plot_registration", "plot_slices_with_masks", "plot_twin_comparison", "pore_network",
    "pore_size_distribution", "porosity", "rev_curve", "specific_surface_area", "sphere_pack"
]
