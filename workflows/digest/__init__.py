"""Digests: how the support model performs, for managers, as text and a chart.

The pure parts live here first: when a digest is due and what period it covers (`schedule`),
mergeable duration histograms for the rollups (`stats`), and the PNG chart (`chart`).
"""
