//! The message-id table the simulator hands out in `sockclnt_create_reply`, assigned like VPP:
//! memclnt's fixed block first (ids 1–28 in `memclnt.api` order), then the other modules.

use std::collections::HashMap;

use vpp_binapi::codec::MessageInfo;

use crate::lb::LbFlavor;
use vpp_binapi::api;

/// memclnt's messages in definition order: VPP gives them the fixed ids 1..=28.
const MEMCLNT_ORDER: [&str; 28] = [
    "memclnt_create",
    "memclnt_create_reply",
    "memclnt_delete",
    "memclnt_delete_reply",
    "rx_thread_exit",
    "memclnt_rx_thread_suspend",
    "memclnt_read_timeout",
    "rpc_call",
    "rpc_call_reply",
    "get_first_msg_id",
    "get_first_msg_id_reply",
    "api_versions",
    "api_versions_reply",
    "trace_plugin_msg_ids",
    "sockclnt_create",
    "sockclnt_create_reply",
    "sockclnt_delete",
    "sockclnt_delete_reply",
    "sock_init_shm",
    "sock_init_shm_reply",
    "memclnt_keepalive",
    "memclnt_keepalive_reply",
    "control_ping",
    "control_ping_reply",
    "memclnt_create_v2",
    "memclnt_create_v2_reply",
    "get_api_json",
    "get_api_json_reply",
];

/// lb messages that VPP 26.06 and earlier do not have.
const NOT_IN_2606: [&str; 8] = [
    "lb_conf_get",
    "lb_conf_get_reply",
    "lb_add_del_as_v2",
    "lb_add_del_as_v2_reply",
    "lb_as_set_weight",
    "lb_as_set_weight_reply",
    "lb_as_v2_dump",
    "lb_as_v2_details",
];

/// Plugins register after the core modules in VPP.
const PLUGINS: [&str; 1] = ["lb"];

/// Message id ↔ message, for every generated message.
#[derive(Debug)]
pub(crate) struct MsgTable {
    by_id: Vec<Option<&'static MessageInfo>>,
    by_name_crc: HashMap<&'static str, u16>,
    first_by_module: HashMap<&'static str, u16>,
}

impl MsgTable {
    pub(crate) fn build(flavor: LbFlavor) -> Self {
        let present = |m: &MessageInfo| {
            flavor != LbFlavor::Release2606 || m.module != "lb" || !NOT_IN_2606.contains(&m.name)
        };
        let mut by_id: Vec<Option<&'static MessageInfo>> = vec![None];
        let find = |name: &str| {
            api::MESSAGES
                .iter()
                .find(|m| m.module == "memclnt" && m.name == name)
        };
        for name in MEMCLNT_ORDER {
            by_id.push(find(name));
        }
        let mut modules: Vec<&'static str> = api::MESSAGES
            .iter()
            .map(|m| m.module)
            .filter(|m| *m != "memclnt")
            .collect();
        modules.sort_by_key(|m| (PLUGINS.contains(m), *m));
        modules.dedup();
        let mut first_by_module = HashMap::from([("memclnt", 1u16)]);
        for module in modules {
            let mut msgs: Vec<&'static MessageInfo> = api::MESSAGES
                .iter()
                .filter(|m| m.module == module && present(m))
                .collect();
            msgs.sort_by_key(|m| m.name);
            first_by_module.insert(module, u16::try_from(by_id.len()).unwrap_or(u16::MAX));
            by_id.extend(msgs.into_iter().map(Some));
        }
        // memclnt messages missing from MEMCLNT_ORDER (a newer memclnt) go at the end.
        let extra: Vec<&'static MessageInfo> = api::MESSAGES
            .iter()
            .filter(|m| m.module == "memclnt" && !MEMCLNT_ORDER.contains(&m.name))
            .collect();
        by_id.extend(extra.into_iter().map(Some));
        let mut by_name_crc = HashMap::new();
        for (i, m) in by_id.iter().enumerate() {
            if let Some(m) = m {
                let id = u16::try_from(i).unwrap_or(u16::MAX);
                by_name_crc.insert(m.name_crc, id);
            }
        }
        Self {
            by_id,
            by_name_crc,
            first_by_module,
        }
    }

    pub(crate) fn info(&self, id: u16) -> Option<&'static MessageInfo> {
        self.by_id.get(usize::from(id)).copied().flatten()
    }

    pub(crate) fn id_of_name_crc(&self, name_crc: &str) -> Option<u16> {
        self.by_name_crc.get(name_crc).copied()
    }

    pub(crate) fn first_id_of_module(&self, module: &str) -> Option<u16> {
        self.first_by_module.get(module).copied()
    }

    /// (id, name_crc) of every message, in id order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u16, &'static str)> + '_ {
        self.by_id
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|m| (u16::try_from(i).unwrap_or(u16::MAX), m.name_crc)))
    }
}
