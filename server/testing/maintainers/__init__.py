"""The maintainers' tools: the reference walkthrough of the README, the README's pictures,
the benchmarks and the cohort sample, and the realistic submissions they build on."""
