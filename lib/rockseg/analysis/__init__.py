"""Analysis: petrophysics of segmented volumes, and the figures the course draws.

    from rockseg.analysis import analyze, porosity, plot_orthoslices
"""
from rockseg.analysis.figures import (
    colourize,
    legend_handles,
    plot_class_fractions,
    plot_class_histograms,
    plot_denoise_comparison,
    plot_fraction_profile,
    plot_grey_bin_labels,
    plot_histogram_comparison,
    plot_orthoslices,
    plot_registration,
    plot_slices_with_masks,
    plot_twin_comparison,
)
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
    "analyze", "colourize", "connected_porosity", "export_labels_tiff", "fraction_error", "fraction_profile",
    "fractions_with_uncertainty", "legend_handles", "overlay_rgb", "phase_fractions", "physics_errors",
    "plot_class_fractions", "plot_class_histograms", "plot_denoise_comparison", "plot_fraction_profile",
    "plot_grey_bin_labels", "plot_histogram_comparison", "plot_orthoslices", "plot_registration",
    "plot_slices_with_masks", "plot_twin_comparison", "pore_size_distribution", "porosity", "rev_curve",
    "specific_surface_area", "sphere_pack",
]
