package kafka

import (
	"sort"

	"github.com/sluicehq/sluice/featurestore"
)

// TopicsFor lists the topics a repository needs: each stream's topic and
// dead-letter topic, each view's compacted changelog, and a repartition
// topic for each view keyed by an entity other than its stream's. A
// changelog takes as many partitions as the topic its view consumes
// (Topic.Like), so that each holds the entries of one source partition.
func TopicsFor(repo *featurestore.Repo) []Topic {
	var out []Topic
	for _, s := range repo.Streams {
		out = append(out, Topic{Name: s.Topic}, Topic{Name: DLQTopic(s.Name)})
	}
	for _, v := range repo.Views {
		changelog := Topic{Name: ChangelogTopic(v.Name), Compacted: true}
		if repo.Repartitioned(v) {
			out = append(out, Topic{Name: RepartitionTopic(v.Name)})
			changelog.Like = RepartitionTopic(v.Name)
		} else if s := repo.Streams[v.Source]; s != nil {
			changelog.Like = s.Topic
		}
		out = append(out, changelog)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
