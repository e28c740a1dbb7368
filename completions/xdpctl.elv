
set edit:completion:arg-completer[xdpctl] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) XDPCTL_COMPLETE="elvish" xdpctl -- $@words) | to-lines
}

