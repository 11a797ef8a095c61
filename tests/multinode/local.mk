# tests/multinode: jobs of several nodes (docs/multinode.md) and torchrun's
# command line.  C unit tests of the pure parts (host lists, placement, the
# torchrun translation), the etcd client against a real etcd, and "nodes"
# as network namespaces (skip 77 where they cannot be made).

MULTINODE_C_TESTS = \
	tests/multinode/test-node-view \
	tests/multinode/test-placement \
	tests/multinode/test-torchrun-cli
check_PROGRAMS += $(MULTINODE_C_TESTS) tests/multinode/test-etcd tests/multinode/test-cluster \
	tests/multinode/test-rendezvous
MULTINODE_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/supervisor -I$(top_srcdir)/tests/supervisor
MULTINODE_TEST_CFLAGS = $(AM_CFLAGS) $(LIBSYSTEMD_CFLAGS)

tests_multinode_test_node_view_SOURCES = tests/multinode/test-node-view.c
tests_multinode_test_node_view_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_test_node_view_CFLAGS = $(MULTINODE_TEST_CFLAGS)
tests_multinode_test_node_view_LDADD = supervisor/libsupervisor.la

tests_multinode_test_placement_SOURCES = tests/multinode/test-placement.c
tests_multinode_test_placement_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_test_placement_CFLAGS = $(MULTINODE_TEST_CFLAGS)
tests_multinode_test_placement_LDADD = supervisor/libsupervisor.la

tests_multinode_test_torchrun_cli_SOURCES = tests/multinode/test-torchrun-cli.c
tests_multinode_test_torchrun_cli_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_test_torchrun_cli_CFLAGS = $(MULTINODE_TEST_CFLAGS)
tests_multinode_test_torchrun_cli_LDADD = supervisor/libsupervisor.la

# test-etcd, test-cluster and test-rendezvous: run by test-etcd-client.py with a real etcd (RM_ETCD_ENDPOINT).
tests_multinode_test_etcd_SOURCES = tests/multinode/test-etcd.c
tests_multinode_test_etcd_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_test_etcd_CFLAGS = $(MULTINODE_TEST_CFLAGS) -pthread
tests_multinode_test_etcd_LDADD = supervisor/libsupervisor.la -lpthread

tests_multinode_test_cluster_SOURCES = tests/multinode/test-cluster.c
tests_multinode_test_cluster_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_test_cluster_CFLAGS = $(MULTINODE_TEST_CFLAGS)
tests_multinode_test_cluster_LDADD = supervisor/libsupervisor.la

tests_multinode_test_rendezvous_SOURCES = tests/multinode/test-rendezvous.c
tests_multinode_test_rendezvous_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_test_rendezvous_CFLAGS = $(MULTINODE_TEST_CFLAGS) -pthread
tests_multinode_test_rendezvous_LDADD = supervisor/libsupervisor.la -lpthread

# The 1000-node simulation and the rendezvous' cost: programs and their driver, not tests (docs/multinode.md).
check_PROGRAMS += tests/multinode/bench-etcd-nodes
tests_multinode_bench_etcd_nodes_SOURCES = tests/multinode/bench-etcd-nodes.c
tests_multinode_bench_etcd_nodes_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_bench_etcd_nodes_CFLAGS = $(MULTINODE_TEST_CFLAGS)
tests_multinode_bench_etcd_nodes_LDADD = supervisor/libsupervisor.la
check_PROGRAMS += tests/multinode/bench-rendezvous
tests_multinode_bench_rendezvous_SOURCES = tests/multinode/bench-rendezvous.c
tests_multinode_bench_rendezvous_CPPFLAGS = $(MULTINODE_TEST_CPPFLAGS)
tests_multinode_bench_rendezvous_CFLAGS = $(MULTINODE_TEST_CFLAGS) -pthread
tests_multinode_bench_rendezvous_LDADD = supervisor/libsupervisor.la -lpthread
EXTRA_DIST += tests/multinode/bench-etcd-nodes.py

MULTINODE_PY_TESTS = \
	tests/multinode/test-etcd-client.py \
	tests/multinode/test-etcd-secure.py \
	tests/multinode/test-netns.py \
	tests/multinode/test-netns-torchrun.py \
	tests/multinode/test-netns-store.py \
	tests/multinode/test-netns-rdzv.py \
	tests/multinode/test-rdzv-c10d.py \
	tests/multinode/test-rdzv-restart.py

TESTS += $(MULTINODE_C_TESTS) $(MULTINODE_PY_TESTS)
EXTRA_DIST += tests/multinode/etcdtest.py tests/multinode/mntest.py tests/multinode/nstest.py tests/multinode/worker.py $(MULTINODE_PY_TESTS)
