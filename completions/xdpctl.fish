complete --keep-order --exclusive --command xdpctl --arguments "(XDPCTL_COMPLETE=fish xdpctl -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
