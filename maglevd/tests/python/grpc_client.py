#!/usr/bin/env python3
"""A maglev.v1 client written against the proto alone, with PyPI's grpcio.

It generates the Python stubs from the proto into a temporary directory (grpcio-tools), lists
the services by reflection (grpcio-reflection), checks health (grpcio-health-checking), calls
every read RPC and one mutating RPC (PauseBackend, then ResumeBackend), and reads three
WatchEvents events (the replay gives them). RPCs that need VPP may answer UNAVAILABLE when
maglevd has no VPP side; anything else that is not OK fails the run.

    grpc_client.py --addr 127.0.0.1:9090 --proto-dir maglev-api/proto

It prints one line per check and exits 0 when every check passed, 1 otherwise.
"""

import argparse
import importlib
import os
import sys
import tempfile


def generate_stubs(proto_dir, out_dir):
    from grpc_tools import protoc
    import grpc_tools

    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main([
        "protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "maglev/v1/maglev.proto",
    ])
    if code != 0:
        raise SystemExit(f"protoc failed with {code}")
    sys.path.insert(0, out_dir)
    return (
        importlib.import_module("maglev.v1.maglev_pb2"),
        importlib.import_module("maglev.v1.maglev_pb2_grpc"),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("--proto-dir", required=True)
    args = parser.parse_args()

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    failures = []

    def check(what, ok, detail=""):
        print(f"{'ok  ' if ok else 'FAIL'} {what} {detail}".rstrip(), flush=True)
        if not ok:
            failures.append(what)

    with tempfile.TemporaryDirectory() as out:
        pb, rpc = generate_stubs(args.proto_dir, out)
        channel = grpc.insecure_channel(args.addr)
        grpc.channel_ready_future(channel).result(timeout=20)

        services = sorted(ProtoReflectionDescriptorDatabase(channel).get_services())
        check("reflection lists maglev.v1.Maglev", "maglev.v1.Maglev" in services, str(services))
        check("reflection lists grpc.health.v1.Health", "grpc.health.v1.Health" in services)
        # The served descriptor set carries the VIP route counters of GetVPPLBCounters.
        reflected = ProtoReflectionDescriptorDatabase(channel).FindFileContainingSymbol(
            "maglev.v1.LBVipCounters")
        counters = next((m for m in reflected.message_type if m.name == "LBVipCounters"), None)
        numbers = {f.name: f.number for f in counters.field} if counters else {}
        check("reflection: LBVipCounters has route_packets = 9 and route_bytes = 10",
              numbers.get("route_packets") == 9 and numbers.get("route_bytes") == 10,
              str(numbers))

        health = health_pb2_grpc.HealthStub(channel)
        overall = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        check("health: overall SERVING",
              overall.status == health_pb2.HealthCheckResponse.SERVING)
        vpp = health.Check(health_pb2.HealthCheckRequest(service="maglev.v1.Maglev"), timeout=10)
        check("health: maglev.v1.Maglev has a status",
              vpp.status in (health_pb2.HealthCheckResponse.SERVING,
                             health_pb2.HealthCheckResponse.NOT_SERVING),
              health_pb2.HealthCheckResponse.ServingStatus.Name(vpp.status))

        stub = rpc.MaglevStub(channel)

        def call(name, request, vpp_side=False):
            try:
                reply = getattr(stub, name)(request, timeout=10)
                check(name, True)
                return reply
            except grpc.RpcError as error:
                allowed = vpp_side and error.code() == grpc.StatusCode.UNAVAILABLE
                check(name, allowed, f"{error.code().name}: {error.details()}")
                return None

        frontends = call("ListFrontends", pb.ListFrontendsRequest())
        check("ListFrontends is not empty", bool(frontends and frontends.frontends))
        frontend = frontends.frontends[0]
        got = call("GetFrontend", pb.GetFrontendRequest(name=frontend.name))
        check("GetFrontend equals the listed one", got == frontend)
        backends = call("ListBackends", pb.ListBackendsRequest())
        backend = backends.backends[0].name
        got = call("GetBackend", pb.GetBackendRequest(name=backend))
        check("GetBackend names it", got is not None and got.name == backend)
        checks = call("ListHealthChecks", pb.ListHealthChecksRequest())
        if checks and checks.healthchecks:
            call("GetHealthCheck", pb.GetHealthCheckRequest(name=checks.healthchecks[0].name))
        member = frontend.pools[0].backends[0].name
        call("PreviewChange", pb.PreviewChangeRequest(
            frontend=frontend.name, backend=member, kind=pb.CHANGE_KIND_DRAIN))
        checked = call("CheckConfig", pb.CheckConfigRequest())
        check("CheckConfig ok", checked is not None and checked.ok)
        version = call("GetVersion", pb.GetVersionRequest())
        check("GetVersion has a version", version is not None and version.version != "")
        call("GetVPPInfo", pb.GetVPPInfoRequest(), vpp_side=True)
        call("GetVPPLBState", pb.GetVPPLBStateRequest(), vpp_side=True)
        call("GetVPPLBCounters", pb.GetVPPLBCountersRequest(), vpp_side=True)
        call("PlanVPPLBSync", pb.PlanVPPLBSyncRequest(), vpp_side=True)
        try:
            stub.GetBackend(pb.GetBackendRequest(name="no-such-backend"), timeout=10)
            check("GetBackend of an unknown name is NOT_FOUND", False)
        except grpc.RpcError as error:
            check("GetBackend of an unknown name is NOT_FOUND",
                  error.code() == grpc.StatusCode.NOT_FOUND)

        paused = call("PauseBackend", pb.BackendRequest(name=member))
        check("PauseBackend pauses", paused is not None
              and paused.state == pb.BACKEND_STATE_PAUSED)
        call("ResumeBackend", pb.BackendRequest(name=member))

        events = stub.WatchEvents(pb.WatchRequest(), timeout=20)
        seen = []
        for event in events:
            seen.append(event.WhichOneof("event"))
            if len(seen) == 3:
                events.cancel()
                break
        check("WatchEvents gave three events", len(seen) == 3, str(seen))
        channel.close()

    if failures:
        print(f"{len(failures)} check(s) failed: {failures}", flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
