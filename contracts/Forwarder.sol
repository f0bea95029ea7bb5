// SPDX-License-Identifier: MIT
pragma solidity 0.8.37;

/// @title Forwarder: passes ether on to another address from inside a contract call.
/// @notice Used by the tests (and handy on the development chain) to make an
/// "internal transfer": ETH that reaches a deposit address through a contract's
/// CALL, which a plain scan of transactions cannot see and only block tracing finds.
contract Forwarder {
    function forward(address payable to) external payable {
        (bool ok, ) = to.call{value: msg.value}("");
        require(ok, "Forwarder: call failed");
    }

    /// Forward to several addresses in one transaction; the last one's call is made to revert
    /// when `revertLast` is set, inside a try so the outer call succeeds (a reverted inner frame).
    function split(address payable[] calldata to, bool revertLast) external payable {
        uint256 share = msg.value / to.length;
        for (uint256 i = 0; i < to.length; i++) {
            if (revertLast && i == to.length - 1) {
                try this.sendAndRevert(to[i]) {} catch {}
            } else {
                (bool ok, ) = to[i].call{value: share}("");
                require(ok, "Forwarder: call failed");
            }
        }
    }

    function sendAndRevert(address payable to) external payable {
        (bool ok, ) = to.call{value: address(this).balance / 2}("");
        require(ok, "Forwarder: call failed");
        revert("Forwarder: reverted on purpose");
    }
}
