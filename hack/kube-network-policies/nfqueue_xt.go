//go:build ignore

// Added to sigs.k8s.io/kube-network-policies' package networkpolicy by hack/build-images.sh
// (the build tag keeps it out of the operator's module; the build removes it). The controller
// sends the first packet of a connection to user space with the nftables "queue" expression,
// which kernels built without CONFIG_NFT_QUEUE lack (this machine's: adding the rule fails with
// ENOENT, so no rule at all is written and no policy is enforced). The build replaces each such
// expression with nfqueueTarget: the same queue through xtables' NFQUEUE target run by
// nftables' compat layer (CONFIG_NETFILTER_XT_TARGET_NFQUEUE, CONFIG_NFT_COMPAT), with the same
// verdicts and the same fail-open (bypass) flag.

package networkpolicy

import (
	"encoding/binary"

	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
)

// nfqueueTarget queues to queue num; with bypass, packets are accepted while no process listens
// on it (expr.QueueFlagBypass), else dropped.
func nfqueueTarget(num uint16, bypass bool) expr.Any {
	// struct xt_NFQ_info_v3 {__u16 queuenum, queues_total, flags}, in the kernel's byte order.
	info := make(xt.Unknown, 6)
	binary.NativeEndian.PutUint16(info[0:], num)
	binary.NativeEndian.PutUint16(info[2:], 1)
	if bypass {
		binary.NativeEndian.PutUint16(info[4:], 1) // NFQ_FLAG_BYPASS
	}
	return &expr.Target{Name: "NFQUEUE", Rev: 3, Info: &info}
}
