"""`imagefix webhook`: Kata pods fixed (mutate) or judged (validate) at admission, as `k8s fix` and
`k8s check` would fix and judge them."""
