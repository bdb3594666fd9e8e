// memcached 1.6.18's meta commands (mg, ms, md, ma, mn, me) byte for byte against a single kai node (N=R=W=1).
import { describeMetaDifferential } from './meta-suite';

describeMetaDifferential('kai');
