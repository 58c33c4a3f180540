// The node's pod sandbox ("pause") program, built by hack/node.sh: no registry can be
// reached here, so the sandbox image is made from this.
module cce-upgrade-watch.local/pause

go 1.26.0
