"""The `pml-ops` command line: the parser and its subcommands (`main`) and the checks of
`pml-ops doctor` (`doctor`)."""
