"""Instance and model catalog, capacity planner, prices and the `make plan` report."""
