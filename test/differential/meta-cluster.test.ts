// memcached 1.6.18's meta commands byte for byte against a 3-node kai cluster (N=3, R=2, W=2), through one node.
import { describeMetaDifferential } from './meta-suite';

describeMetaDifferential('kai-cluster');
