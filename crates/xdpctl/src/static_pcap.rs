//! Link shim for the static build (`scripts/build.sh`, `crt-static`).
//!
//! `xdpctl capture -f` compiles pcap-filter expressions with libpcap
//! (`pcap_open_dead`, `pcap_compile`, `pcap_offline_filter`). Linked
//! statically, libpcap's `pcap.o` brings its table of live capture
//! sources, and with it `pcap-dbus.o`, which calls libdbus; Debian has no
//! static libsystemd for a static libdbus to use. xdpctl never opens a live
//! capture, so these functions are never called: each aborts if one were.

macro_rules! never_called {
    ($($name:ident),* $(,)?) => {
        $(
            #[unsafe(no_mangle)]
            extern "C" fn $name() -> ! {
                std::process::abort()
            }
        )*
    };
}

never_called!(
    dbus_bus_add_match,
    dbus_bus_get,
    dbus_bus_register,
    dbus_connection_flush,
    dbus_connection_open,
    dbus_connection_pop_message,
    dbus_connection_read_write,
    dbus_connection_send,
    dbus_connection_set_max_received_size,
    dbus_connection_unref,
    dbus_error_free,
    dbus_error_is_set,
    dbus_free,
    dbus_message_is_signal,
    dbus_message_marshal,
    dbus_message_unref,
    dbus_message_demarshal,
);
