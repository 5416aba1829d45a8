"""The quickstart demo: breast-cancer classification with two algorithms and a promotion."""
